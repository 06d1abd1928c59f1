//! The framing of the socket: `\n`-terminated lines of at most the maximum frame, as
//! `tokio_util`'s `LinesCodec` reads them, except that a line that is not UTF-8 is a frame
//! of its own ([`NotUtf8`]) rather than an error. `FramedRead` ends its stream after a
//! decoder's error, so with the plain codec one bad byte closed the connection without the
//! `bad_request` that docs/protocol.md promises.

use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

/// A line that was not UTF-8 (and is consumed, so the next line reads normally).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotUtf8;

pub(crate) struct Lines(LinesCodec);

impl Lines {
    pub(crate) fn new(max_length: usize) -> Lines {
        Lines(LinesCodec::new_with_max_length(max_length))
    }
}

/// `LinesCodec` consumes a line before it checks its UTF-8, and reports a bad one as an
/// `InvalidData` I/O error; read errors of the socket never pass through `decode`.
fn lift(
    frame: Result<Option<String>, LinesCodecError>,
) -> Result<Option<Result<String, NotUtf8>>, LinesCodecError> {
    match frame {
        Ok(line) => Ok(line.map(Ok)),
        Err(LinesCodecError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            Ok(Some(Err(NotUtf8)))
        }
        Err(e) => Err(e),
    }
}

impl Decoder for Lines {
    type Item = Result<String, NotUtf8>;
    type Error = LinesCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        lift(self.0.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        lift(self.0.decode_eof(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_utf8_is_a_frame_and_the_next_line_reads() {
        let mut lines = Lines::new(64);
        let mut buf = BytesMut::from(&b"{\"id\":1}\n\xff\xfe\n{\"id\":2}\n"[..]);
        assert_eq!(
            lines.decode(&mut buf).unwrap(),
            Some(Ok("{\"id\":1}".into()))
        );
        assert_eq!(lines.decode(&mut buf).unwrap(), Some(Err(NotUtf8)));
        assert_eq!(
            lines.decode(&mut buf).unwrap(),
            Some(Ok("{\"id\":2}".into()))
        );
        assert_eq!(lines.decode(&mut buf).unwrap(), None);
    }
}
