//! Screens as PNG: 160x144, 2-bit greyscale, so every viewer opens them and a DMG frame
//! costs about a kilobyte.

use gameboy::{HEIGHT, WIDTH};

/// Encodes a frame of shade indices (0 lightest .. 3 darkest) as a 2-bit greyscale PNG
/// (grey levels 0xFF, 0xAA, 0x55, 0x00).
pub fn encode_png(frame: &[u8]) -> Vec<u8> {
    assert_eq!(frame.len(), WIDTH * HEIGHT, "frame size");
    let mut packed = Vec::with_capacity(WIDTH * HEIGHT / 4);
    for row in frame.chunks_exact(WIDTH) {
        for quad in row.chunks_exact(4) {
            let mut byte = 0u8;
            for &shade in quad {
                // 2-bit greyscale: 3 is white, 0 is black, the reverse of DMG shades.
                byte = (byte << 2) | (3 - (shade & 3));
            }
            packed.push(byte);
        }
    }
    let mut out = Vec::with_capacity(1200);
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH as u32, HEIGHT as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Two);
        enc.set_compression(png::Compression::Balanced);
        let mut w = enc.write_header().expect("in-memory PNG header");
        w.write_image_data(&packed).expect("in-memory PNG data");
    }
    out
}

/// Decodes a PNG written by [`encode_png`] back to shade indices.
pub fn decode_png(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| format!("PNG: {e}"))?;
    let info = reader.info();
    if (info.width as usize, info.height as usize) != (WIDTH, HEIGHT)
        || info.color_type != png::ColorType::Grayscale
        || info.bit_depth != png::BitDepth::Two
    {
        return Err(format!(
            "PNG is {}x{} {:?}/{:?}, expected {WIDTH}x{HEIGHT} 2-bit greyscale",
            info.width, info.height, info.color_type, info.bit_depth
        ));
    }
    let mut buf = vec![0u8; reader.output_buffer_size().ok_or("PNG too large")?];
    let frame_info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("PNG: {e}"))?;
    let stride = frame_info.line_size;
    let mut out = Vec::with_capacity(WIDTH * HEIGHT);
    for y in 0..HEIGHT {
        let row = &buf[y * stride..][..WIDTH / 4];
        for &byte in row {
            for i in (0..4).rev() {
                out.push(3 - ((byte >> (2 * i)) & 3));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip() {
        let frame: Vec<u8> = (0..WIDTH * HEIGHT)
            .map(|i| ((i * 7 + i / 160) % 4) as u8)
            .collect();
        let png = encode_png(&frame);
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(decode_png(&png).unwrap(), frame);
        assert!(decode_png(b"nope").is_err());
    }
}
