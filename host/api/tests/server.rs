//! The API on a real listening socket, driven over HTTP.

mod common;

use common::{PASSWORD, basic, harness};

#[tokio::test(flavor = "multi_thread")]
async fn records_posted_over_http_are_accepted() {
    let h = harness();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_api::serve(listener, h.state.clone(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{address}/v1/sources/admissions/records"))
        .header("authorization", basic("hospital", PASSWORD))
        .header("content-type", "text/csv")
        .body("PatientID,AdmissionID,AdmissionStartDate\r\np1,1,6/26/2012\r\np2,2,2012-07-01 10:00:00\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["accepted"], 2);
    assert_eq!(h.spooled("admissions").len(), 2);
    let unauthorized =
        client.post(format!("http://{address}/v1/sources/admissions/records")).body("x").send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
