//! Test images made on the spot (shared by the black-box tests, included with `#[path]`).

/// A `w`×`h` RGB PNG whose pixels depend on `seed` (different seeds, different bytes).
pub fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let data: Vec<u8> = (0..w * h * 3)
        .map(|i| u8::try_from((i.wrapping_mul(seed + 7) >> 3) % 256).unwrap())
        .collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}
