//! Hostile inputs, written byte by byte (std only, so benches and other crates' tests can
//! include this file with `#[path]`): a progressive JPEG with thousands of cheap scans, a
//! PNG whose colour profile inflates to hundreds of MB, and large progressive 4:4:4 JPEGs.
#![allow(
    dead_code,
    missing_docs,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::unusual_byte_groupings
)]
// Bit packing truncates on purpose; the Huffman codes are grouped by their prefix.

/// Bits into bytes, most significant bit first, with JPEG's 0xFF byte stuffing.
struct JpegBits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl JpegBits {
    fn new() -> Self {
        JpegBits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }

    fn put(&mut self, value: u32, bits: u32) {
        for i in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                let byte = self.acc as u8;
                self.out.push(byte);
                if byte == 0xFF {
                    self.out.push(0);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// Pads the last byte with 1 bits, as the standard asks.
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(body);
}

/// DC table 0: category 0 has the 1-bit code `0`, categories 1–11 4-bit codes 1000…1010.
const DC_CODE: [(u32, u32); 12] = [
    (0b0, 1),
    (0b1000, 4),
    (0b1001, 4),
    (0b1010, 4),
    (0b1011, 4),
    (0b1100, 4),
    (0b1101, 4),
    (0b1110, 4),
    (0b1111_0, 5),
    (0b1111_10, 6),
    (0b1111_110, 7),
    (0b1111_1110, 8),
];

/// AC table 0: the end-of-band runs EOB0…EOB14 (symbols 0x00, 0x10, …, 0xE0), 4-bit codes
/// 0000…1110.
fn ac_eobrun_code(r: u32) -> (u32, u32) {
    (r, 4)
}

/// SOI, a flat quantisation table, SOF2 with `components` 1×1-sampled components, and the
/// two Huffman tables above.
fn progressive_header(width: u16, height: u16, components: u8) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1u8; 64]);
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.push(components);
    for c in 0..components {
        sof.extend_from_slice(&[c + 1, 0x11, 0]);
    }
    segment(&mut out, 0xC2, &sof);
    // DC: 1 code of length 1, 4 of length 4, 1 each of lengths 5–8 (see DC_CODE).
    let mut dht = vec![0x00];
    let mut counts = [0u8; 16];
    counts[0] = 1;
    counts[3] = 7;
    counts[4] = 1;
    counts[5] = 1;
    counts[6] = 1;
    counts[7] = 1;
    dht.extend_from_slice(&counts);
    dht.extend(0u8..12);
    // AC: 15 codes of length 4.
    dht.push(0x10);
    let mut counts = [0u8; 16];
    counts[3] = 15;
    dht.extend_from_slice(&counts);
    dht.extend((0u8..15).map(|r| r << 4));
    segment(&mut out, 0xC4, &dht);
    out
}

fn sos(out: &mut Vec<u8>, components: &[u8], ss: u8, se: u8, ah_al: u8) {
    let mut body = vec![u8::try_from(components.len()).unwrap()];
    for &c in components {
        body.extend_from_slice(&[c, 0x00]); // DC table 0, AC table 0
    }
    body.extend_from_slice(&[ss, se, ah_al]);
    segment(out, 0xDA, &body);
}

/// A DC first scan over all components (interleaved; every component 1×1, so an MCU is
/// one block of each), DC values `dc(component, block_x, block_y)` already shifted by `al`.
fn dc_scan(
    out: &mut Vec<u8>,
    components: u8,
    (bw, bh): (usize, usize),
    al: u8,
    dc: impl Fn(u8, usize, usize) -> i32,
) {
    let ids: Vec<u8> = (1..=components).collect();
    sos(out, &ids, 0, 0, al);
    let mut bits = JpegBits::new();
    let mut pred = vec![0i32; usize::from(components)];
    for by in 0..bh {
        for bx in 0..bw {
            for c in 0..components {
                let v = dc(c, bx, by);
                let diff = v - pred[usize::from(c)];
                pred[usize::from(c)] = v;
                let cat = 32 - diff.unsigned_abs().leading_zeros();
                let (code, len) = DC_CODE[cat as usize];
                bits.put(code, len);
                if cat > 0 {
                    let extra = if diff < 0 { diff - 1 } else { diff };
                    bits.put((extra as u32) & ((1 << cat) - 1), cat);
                }
            }
        }
    }
    out.extend(bits.finish());
}

/// An AC first scan (Ss 1, Se 63, Ah 0, Al 0) of one component whose every band is empty:
/// a handful of end-of-band runs of up to 32 767 blocks each.
fn empty_ac_scan(out: &mut Vec<u8>, component: u8, blocks: usize) {
    sos(out, &[component], 1, 63, 0x00);
    let mut bits = JpegBits::new();
    let mut left = blocks;
    while left > 0 {
        let run = left.min(32_767) as u32;
        let r = 31 - run.leading_zeros();
        let (code, len) = ac_eobrun_code(r);
        bits.put(code, len);
        bits.put(run - (1 << r), r);
        left -= run as usize;
    }
    out.extend(bits.finish());
}

/// A grayscale progressive JPEG of `width`×`height` with a DC scan that leaves its lowest
/// bit unrefined (Al 1: so no decoder scale is ever "complete", and nothing stops early)
/// followed by `ac_scans` AC scans of the whole image. Each AC scan is legal (Ah 0, Al 0
/// may be repeated), costs a pass over every block, and takes a few dozen bytes. 8000×6000
/// with 5000 scans is about 700 KB.
pub fn many_scan_jpeg(width: u16, height: u16, ac_scans: usize) -> Vec<u8> {
    let mut out = progressive_header(width, height, 1);
    let (bw, bh) = (
        usize::from(width).div_ceil(8),
        usize::from(height).div_ceil(8),
    );
    dc_scan(&mut out, 1, (bw, bh), 1, |_, _, _| 0);
    for _ in 0..ac_scans {
        empty_ac_scan(&mut out, 1, bw * bh);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A complete progressive 4:4:4 colour JPEG: a smooth gradient (one colour per 8×8 block,
/// in the DC scan) and empty AC bands. libjpeg holds 2 bytes × 64 coefficients per block of
/// each of the 3 components to decode it: 7000×7000 (49 MP) needs 294 MB, and the file is
/// about 0.5 MB.
pub fn progressive_444_jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = progressive_header(width, height, 3);
    let (bw, bh) = (
        usize::from(width).div_ceil(8),
        usize::from(height).div_ceil(8),
    );
    // DC of a flat block is 8 × (sample − 128) with the flat quantiser: a slow diagonal
    // gradient in Y, two gentler ones in Cb and Cr.
    dc_scan(&mut out, 3, (bw, bh), 0, |c, x, y| {
        let v = match c {
            0 => (x + y) * 255 / (bw + bh),
            1 => x * 200 / bw + 28,
            _ => y * 200 / bh + 28,
        } as i32;
        8 * (v - 128)
    });
    for c in 1..=3 {
        empty_ac_scan(&mut out, c, bw * bh);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Just the header of a progressive 4:4:4 JPEG up to its first scan header (what the probe
/// reads), for cost checks without pixels.
pub fn progressive_444_header(width: u16, height: u16) -> Vec<u8> {
    let mut out = progressive_header(width, height, 3);
    sos(&mut out, &[1, 2, 3], 0, 0, 0);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Bits into bytes, least significant bit first (deflate).
struct DeflateBits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl DeflateBits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code: sent most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let reversed = code.reverse_bits() >> (32 - len);
        self.put(reversed, len);
    }
}

/// A zlib stream that inflates to `len` zero bytes: one fixed-Huffman block of a literal 0
/// and matches of 258 bytes at distance 1 (13 bits per 258 bytes: 400 MiB in 2.5 MB).
pub fn zlib_zeros(len: usize) -> Vec<u8> {
    assert!(len >= 4);
    let mut bits = DeflateBits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    bits.code(0b0011_0000, 8); // literal 0
    let mut left = len - 1;
    while left >= 258 {
        bits.code(0b1100_0101, 8); // length 258 (code 285, no extra bits)
        bits.code(0, 5); // distance code 0: distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0b0011_0000, 8); // the tail as literals
    }
    bits.code(0, 7); // end of block (256)
    if bits.n > 0 {
        bits.put(0, 8 - bits.n);
    }
    let mut out = bits.out;
    let b = (len % 65_521) as u32;
    out.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    out
}

/// A `width`×`height` gray PNG whose iCCP profile inflates to `icc_len` zero bytes (a
/// "zip bomb" for decoders that inflate profiles without a bound).
pub fn png_with_huge_iccp(width: u32, height: u32, icc_len: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(zlib_zeros(icc_len));
    png_chunk(&mut out, b"iCCP", &iccp);
    // Image data: rows of filter byte 0 and a gray ramp, in stored deflate blocks.
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0);
        raw.extend((0..width).map(|x| ((x + y) % 256) as u8));
    }
    let mut idat = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        idat.push(u8::from(i + 1 == chunks.len()));
        let n = chunk.len() as u16;
        idat.extend_from_slice(&n.to_le_bytes());
        idat.extend_from_slice(&(!n).to_le_bytes());
        idat.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    idat.extend_from_slice(&((b << 16) | a).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}
