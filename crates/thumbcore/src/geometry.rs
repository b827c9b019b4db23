//! Output size: fit inside the box, keep the aspect ratio, never upscale.

/// The size of the thumbnail for a `width`×`height` image (as displayed) in a
/// `max_width`×`max_height` box.
///
/// Rule: an image that already fits keeps its size. Otherwise the side that limits the
/// scale gets exactly the box's size and the other side is the exact proportional length
/// rounded half up, at least 1. So 2000×1500 → 330×248 (247.5 rounds up) and
/// 1000×2000 → 165×330.
///
/// ```
/// assert_eq!(thumbcore::fit(2000, 1500, 330, 330), (330, 248));
/// assert_eq!(thumbcore::fit(1000, 2000, 330, 330), (165, 330));
/// assert_eq!(thumbcore::fit(200, 100, 330, 330), (200, 100));
/// ```
pub fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let (bw, bh) = (u64::from(max_width.max(1)), u64::from(max_height.max(1)));
    if w <= bw && h <= bh {
        return (width.max(1), height.max(1));
    }
    // Compare w/bw with h/bh without dividing: the larger ratio limits the scale.
    let (out_w, out_h) = if w * bh >= h * bw {
        (bw, (2 * h * bw + w) / (2 * w))
    } else {
        ((2 * w * bh + h) / (2 * h), bh)
    };
    let clamp = |v: u64| u32::try_from(v.max(1)).unwrap_or(u32::MAX);
    (clamp(out_w), clamp(out_h))
}

/// How much larger than the output a DCT-scaled JPEG decode stays, per side: the DCT's
/// scaling is a box filter, so it may do the coarse part of the reduction but must leave
/// the last 2× to Lanczos3, or fine detail aliases (Pillow's `reducing_gap=2.0`; a
/// 1365×1074 photo decoded at 1/4, 342 px, for a 330 px thumbnail scored DSSIM 0.08
/// against 0.0006 at 1/2).
pub(crate) const DCT_HEADROOM: u32 = 2;

/// The JPEG DCT scale denominator (1, 2, 4 or 8): the largest reduction whose output is still
/// at least [`DCT_HEADROOM`] times the target on both sides. libjpeg rounds scaled sizes up.
pub(crate) fn dct_scale(stored: (u32, u32), target: (u32, u32)) -> u8 {
    let fits = |denom: u32| {
        let (w, h) = (stored.0.div_ceil(denom), stored.1.div_ceil(denom));
        u64::from(w) >= u64::from(target.0) * u64::from(DCT_HEADROOM)
            && u64::from(h) >= u64::from(target.1) * u64::from(DCT_HEADROOM)
    };
    [8u8, 4, 2]
        .into_iter()
        .find(|&d| fits(u32::from(d)))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: (u32, u32), expected: (u32, u32)) {
        assert_eq!(fit(input.0, input.1, 330, 330), expected, "{input:?}");
    }

    #[test]
    fn fit_rule() {
        check((2000, 1500), (330, 248));
        check((1000, 2000), (165, 330));
        check((330, 330), (330, 330));
        check((331, 330), (330, 329));
        check((80, 80), (80, 80));
        check((329, 1000), (109, 330));
        check((6028, 3391), (330, 186));
        check((100_000, 80), (330, 1));
        check((5000, 5000), (330, 330));
        assert_eq!(fit(2000, 1500, 100, 330), (100, 75));
    }

    #[test]
    fn dct_scale_leaves_twice_the_target() {
        let check = |stored: (u32, u32), target: (u32, u32), denom: u8| {
            assert_eq!(dct_scale(stored, target), denom, "{stored:?} → {target:?}");
        };
        check((6028, 3391), (330, 186), 8); // 754×424 ≥ 660×372
        check((6000, 4000), (330, 220), 8); // 750×500 ≥ 660×440
        check((1920, 1200), (330, 206), 2); // 1/4 would be 480 wide
        check((1365, 1074), (330, 260), 2); // 683×537: the real case that aliased at 1/4
        check((400, 300), (330, 248), 1);
        check((659, 500), (330, 250), 1); // 1/2 would be 330: exactly the target, too little
        // libjpeg rounds up: 5273/8 → 660 is still enough, 5272/8 = 659 is not.
        check((5273, 5273), (330, 330), 8);
        check((5272, 5272), (330, 330), 4);
        // Both sides count: at 1/8 this is 660×325, and 325 < 2 × 163.
        check((5280, 2600), (330, 163), 4);
    }
}
