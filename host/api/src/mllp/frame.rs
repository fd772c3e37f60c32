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

/// How much of the start of a frame that cannot be taken is kept, so that its acknowledgement
/// can name the message's control id (MSH-10 comes early in the MSH segment).
const HEAD: usize = 8 * 1024;

/// What the reader found next on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole frame's content.
    Frame(Vec<u8>),
    /// A frame that cannot be taken, why, and the first bytes of its content (its content was
    /// read and dropped; the connection goes on with the next frame).
    Refused {
        /// Why.
        reason: String,
        /// Up to 8 KiB of the frame's start: its MSH, for the acknowledgement.
        head: Vec<u8>,
    },
    /// Bytes outside any frame: the framing is lost, and the connection should be closed after
    /// saying why.
    OutOfFrame(String),
}

/// The frame being read.
#[derive(Debug, Default)]
struct Partial {
    /// Its content so far; once it outgrew the limit, only its first [`HEAD`] bytes.
    content: Vec<u8>,
    too_large: bool,
    /// The end block 0x1C came; its CR has not yet.
    ended: bool,
}

impl Partial {
    fn append(&mut self, bytes: &[u8], max: usize) {
        if !self.too_large && self.content.len() + bytes.len() > max {
            self.too_large = true;
            self.content.truncate(HEAD);
        }
        let room = if self.too_large { HEAD.saturating_sub(self.content.len()) } else { bytes.len() };
        self.content.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    /// The frame, ended.
    fn finish(self, max: usize) -> Event {
        if self.too_large {
            Event::Refused {
                reason: format!("the message is larger than the limit of {max} bytes"),
                head: self.content,
            }
        } else {
            Event::Frame(self.content)
        }
    }
}

/// Reads frames from a connection, holding at most `max` bytes of one frame. Every state is kept
/// in the reader, so a [`FrameReader::next`] given up on (an idle timeout) leaves what it had
/// read for [`FrameReader::unfinished`].
pub struct FrameReader<R> {
    inner: R,
    buffer: Vec<u8>,
    start: usize,
    max: usize,
    eof: bool,
    frame: Option<Partial>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of `inner` whose frames may hold up to `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, buffer: Vec::with_capacity(64 * 1024), start: 0, max, eof: false, frame: None }
    }

    /// The next event; `None` once the peer closed the connection between frames (a frame cut
    /// off by the close is dropped: it was never acknowledged).
    pub async fn next(&mut self) -> std::io::Result<Option<Event>> {
        loop {
            if self.start >= self.buffer.len() {
                if !self.fill().await? {
                    self.frame = None;
                    return Ok(None);
                }
                continue;
            }
            let Some(frame) = self.frame.as_mut() else {
                // Between frames.
                let byte = self.buffer[self.start];
                if matches!(byte, b'\r' | b'\n' | b' ' | b'\t') {
                    self.start += 1;
                    continue;
                }
                if byte != START {
                    self.lose_framing();
                    return Ok(Some(Event::OutOfFrame(format!(
                        "byte 0x{byte:02X} outside an MLLP frame: a frame starts with 0x0B and ends with 0x1C 0x0D"
                    ))));
                }
                self.start += 1;
                self.frame = Some(Partial::default());
                continue;
            };
            if frame.ended {
                match self.buffer[self.start] {
                    CR => self.start += 1,
                    // The next frame starts right after the end block: this one is whole, only
                    // its CR is missing.
                    START => {}
                    _ => {
                        self.frame = None;
                        self.lose_framing();
                        return Ok(Some(Event::OutOfFrame("the end block 0x1C is not followed by 0x0D".into())));
                    }
                }
                let frame = self.frame.take().expect("a frame in hand");
                return Ok(Some(frame.finish(self.max)));
            }
            // Inside a frame: up to the end block.
            let window = &self.buffer[self.start..];
            let stop = window.iter().position(|&b| b == END || b == START);
            let take = stop.unwrap_or(window.len());
            frame.append(&window[..take], self.max);
            self.start += take;
            match stop {
                None => {}
                Some(_) if self.buffer[self.start] == START => {
                    // A new frame begins before this one ended: this one is refused, the new
                    // one read next.
                    let frame = self.frame.take().expect("a frame in hand");
                    return Ok(Some(Event::Refused {
                        reason: "the frame has no end block: a new frame (0x0B) began before 0x1C 0x0D".into(),
                        head: frame.content,
                    }));
                }
                Some(_) => {
                    self.start += 1;
                    frame.ended = true;
                }
            }
        }
    }

    /// The frame begun and not finished when [`FrameReader::next`] was given up on: whole but
    /// for the CR after its end block (then it is taken), else refused.
    pub fn unfinished(&mut self) -> Option<Event> {
        let frame = self.frame.take()?;
        if frame.ended {
            return Some(frame.finish(self.max));
        }
        Some(Event::Refused {
            reason: "the frame did not end: its end block (0x1C 0x0D) never came, and the connection went idle".into(),
            head: frame.content,
        })
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
                Event::Refused {
                    reason: "the frame has no end block: a new frame (0x0B) began before 0x1C 0x0D".into(),
                    head: b"MSH|cut".to_vec()
                },
                Event::Frame(b"MSH|next\r".to_vec())
            ]
        );
        assert_eq!(
            events(b"\x0bMSH|x\x1cjunk", 100).await,
            [Event::OutOfFrame("the end block 0x1C is not followed by 0x0D".into())]
        );
        // An end block without its CR, the next frame right after it: both are taken.
        assert_eq!(
            events(b"\x0bMSH|a\x1c\x0bMSH|b\x1c\x0d", 100).await,
            [Event::Frame(b"MSH|a".to_vec()), Event::Frame(b"MSH|b".to_vec())]
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
                Event::Refused {
                    reason: "the message is larger than the limit of 1000 bytes".into(),
                    head: vec![b'x'; HEAD]
                },
                Event::Frame(b"MSH|small\r".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn a_frame_left_unfinished_is_refused_or_taken_when_given_up_on() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(server, 100);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"\x0bMSH|half").await.unwrap();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), reader.next()).await;
        assert!(waited.is_err(), "no event yet");
        assert_eq!(
            reader.unfinished(),
            Some(Event::Refused {
                reason: "the frame did not end: its end block (0x1C 0x0D) never came, and the connection went idle"
                    .into(),
                head: b"MSH|half".to_vec()
            })
        );
        assert_eq!(reader.unfinished(), None);
        // Whole but for the CR after its end block: taken.
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(server, 100);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"\x0bMSH|whole\x1c").await.unwrap();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), reader.next()).await;
        assert!(waited.is_err(), "no event yet");
        assert_eq!(reader.unfinished(), Some(Event::Frame(b"MSH|whole".to_vec())));
    }
}
