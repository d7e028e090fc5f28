//! Server frames on the wire: final, unmasked (RFC 6455 §5.2).

pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// The longest server frame header (2 + 8 bytes of length).
pub(crate) const MAX_HEADER: usize = 10;

/// A frame whose header and payload fit this buffer is encoded on the
/// stack and written with one plain write.
pub(crate) const SMALL_FRAME: usize = 512;

/// Appends a final, unmasked frame header to `out`.
pub(crate) fn frame_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    let mut header = [0u8; MAX_HEADER];
    let written = header_into(&mut header, opcode, len);
    out.extend_from_slice(&header[..written]);
}

/// Writes a final, unmasked frame header into `buffer`; returns its length.
pub(crate) fn header_into(buffer: &mut [u8; MAX_HEADER], opcode: u8, len: usize) -> usize {
    buffer[0] = 0x80 | opcode;
    if let Ok(short) = u8::try_from(len)
        && short < 126
    {
        buffer[1] = short;
        2
    } else if let Ok(medium) = u16::try_from(len) {
        buffer[1] = 126;
        buffer[2..4].copy_from_slice(&medium.to_be_bytes());
        4
    } else {
        buffer[1] = 127;
        buffer[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// Writes a whole frame into `buffer`, if it fits; returns its length.
pub(crate) fn small_frame(
    buffer: &mut [u8; SMALL_FRAME],
    opcode: u8,
    payload: &[u8],
) -> Option<usize> {
    if payload.len() + MAX_HEADER > SMALL_FRAME {
        return None;
    }
    let mut header = [0u8; MAX_HEADER];
    let header_len = header_into(&mut header, opcode, payload.len());
    buffer[..header_len].copy_from_slice(&header[..header_len]);
    buffer[header_len..header_len + payload.len()].copy_from_slice(payload);
    Some(header_len + payload.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        for (len, expected) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let mut out = Vec::new();
            frame_header(&mut out, OP_TEXT, len);
            assert_eq!(out.len(), expected, "{len}");
        }
    }

    #[test]
    fn small_frames_match_the_general_encoding() {
        for len in [0, 1, 125, 126, 300, SMALL_FRAME - MAX_HEADER] {
            let payload = vec![b'p'; len];
            let mut buffer = [0u8; SMALL_FRAME];
            let written = small_frame(&mut buffer, OP_TEXT, &payload).unwrap();
            let mut expected = Vec::new();
            frame_header(&mut expected, OP_TEXT, len);
            expected.extend_from_slice(&payload);
            assert_eq!(&buffer[..written], &expected[..], "{len}");
        }
        assert!(small_frame(&mut [0; SMALL_FRAME], OP_TEXT, &[0; SMALL_FRAME]).is_none());
    }
}
