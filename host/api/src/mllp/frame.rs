//! MLLP framing: a message is sent as `0x0B`, its bytes, `0x1C 0x0D`. Frames follow one another
//! on a connection (a sender may send several before reading the acknowledgements); CR, LF and
//! spaces between frames are ignored.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Start block.
pub const START: u8 = 0x0B;
/// End block, followed by [`CR`].
pub const END: u8 = 0x1C;
/// Carriage return.
pub const CR: u8 = 0x0D;

/// What the reader found next on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole frame's content.
    Frame(Vec<u8>),
    /// A frame that cannot be taken, and why (its content was read and dropped; the connection
    /// goes on with the next frame).
    Refused(String),
    /// Bytes outside any frame: the framing is lost, and the connection should be closed after
    /// saying why.
    OutOfFrame(String),
}

/// Reads frames from a connection, holding at most `max` bytes of one frame.
pub struct FrameReader<R> {
    inner: R,
    buffer: Vec<u8>,
    start: usize,
    max: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of `inner` whose frames may hold up to `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, buffer: Vec::with_capacity(64 * 1024), start: 0, max, eof: false }
    }

    /// The next event; `None` once the peer closed the connection between frames (a frame cut
    /// off by the close is dropped: it was never acknowledged).
    pub async fn next(&mut self) -> std::io::Result<Option<Event>> {
        // Between frames.
        loop {
            while self.start < self.buffer.len() && matches!(self.buffer[self.start], b'\r' | b'\n' | b' ' | b'\t') {
                self.start += 1;
            }
            if self.start < self.buffer.len() {
                break;
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
        if self.buffer[self.start] != START {
            let found = self.buffer[self.start];
            self.lose_framing();
            return Ok(Some(Event::OutOfFrame(format!(
                "byte 0x{found:02X} outside an MLLP frame: a frame starts with 0x0B and ends with 0x1C 0x0D"
            ))));
        }
        self.start += 1;
        // Inside a frame: up to the end block, dropping the content once it outgrows `max`.
        let mut content = Vec::new();
        let mut too_large = false;
        loop {
            let window = &self.buffer[self.start..];
            let stop = window.iter().position(|&b| b == END || b == START);
            let take = stop.unwrap_or(window.len());
            if !too_large {
                if content.len() + take > self.max {
                    too_large = true;
                    content = Vec::new();
                } else {
                    content.extend_from_slice(&window[..take]);
                }
            }
            self.start += take;
            match stop {
                None => {
                    if !self.fill().await? {
                        return Ok(None);
                    }
                }
                Some(_) if self.buffer[self.start] == START => {
                    // A new frame begins before this one ended: this one is refused, the new
                    // one read next.
                    return Ok(Some(Event::Refused(
                        "the frame has no end block: a new frame (0x0B) began before 0x1C 0x0D".into(),
                    )));
                }
                Some(_) => {
                    self.start += 1;
                    while self.start >= self.buffer.len() {
                        if !self.fill().await? {
                            return Ok(None);
                        }
                    }
                    if self.buffer[self.start] != CR {
                        self.lose_framing();
                        return Ok(Some(Event::OutOfFrame("the end block 0x1C is not followed by 0x0D".into())));
                    }
                    self.start += 1;
                    if too_large {
                        return Ok(Some(Event::Refused(format!(
                            "the message is larger than the limit of {} bytes",
                            self.max
                        ))));
                    }
                    return Ok(Some(Event::Frame(content)));
                }
            }
        }
    }

    /// Once the framing is lost nothing more is read: the connection is to be closed.
    fn lose_framing(&mut self) {
        self.start = self.buffer.len();
        self.eof = true;
    }

    /// Reads more bytes; false at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        let read = self.inner.read(&mut chunk).await?;
        if read == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(true)
    }
}

/// `content` framed for sending.
pub fn framed(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 3);
    out.push(START);
    out.extend_from_slice(content);
    out.extend_from_slice(&[END, CR]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn events(bytes: &[u8], max: usize) -> Vec<Event> {
        let mut reader = FrameReader::new(bytes, max);
        let mut out = Vec::new();
        while let Some(event) = reader.next().await.unwrap() {
            out.push(event);
        }
        out
    }

    #[tokio::test]
    async fn frames_follow_one_another() {
        let mut bytes = framed(b"MSH|one\r");
        bytes.extend_from_slice(b"\r\n");
        bytes.extend(framed(b"MSH|two\r"));
        assert_eq!(
            events(&bytes, 100).await,
            [Event::Frame(b"MSH|one\r".to_vec()), Event::Frame(b"MSH|two\r".to_vec())]
        );
    }

    #[tokio::test]
    async fn bad_framing_is_named() {
        assert_eq!(
            events(b"MSH|x\r", 100).await,
            [Event::OutOfFrame(
                "byte 0x4D outside an MLLP frame: a frame starts with 0x0B and ends with 0x1C 0x0D".into()
            )]
        );
        let mut bytes = b"\x0bMSH|cut".to_vec();
        bytes.extend(framed(b"MSH|next\r"));
        assert_eq!(
            events(&bytes, 100).await,
            [
                Event::Refused("the frame has no end block: a new frame (0x0B) began before 0x1C 0x0D".into()),
                Event::Frame(b"MSH|next\r".to_vec())
            ]
        );
        assert_eq!(
            events(b"\x0bMSH|x\x1cjunk", 100).await,
            [Event::OutOfFrame("the end block 0x1C is not followed by 0x0D".into())]
        );
        assert_eq!(events(b"\x0bMSH|never ends", 100).await, [], "a frame cut off by the close is dropped");
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_and_the_next_one_read() {
        let mut bytes = framed(&vec![b'x'; 300_000]);
        bytes.extend(framed(b"MSH|small\r"));
        assert_eq!(
            events(&bytes, 1000).await,
            [
                Event::Refused("the message is larger than the limit of 1000 bytes".into()),
                Event::Frame(b"MSH|small\r".to_vec())
            ]
        );
    }
}
