//! Medians and spread of repeated measurements.
//!
//! The bench machine is shared, so single numbers mean little: every figure
//! is the median of several interleaved runs, shown with its spread, and
//! A/B comparisons use the ratio of each round's pair (A and B measured next
//! to each other) rather than the ratio of two medians taken far apart.

use serde::{Deserialize, Serialize};

/// A set of samples in a few numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Half the min–max range relative to the median (0.03 reads ±3 %).
    pub spread: f64,
}

/// The median of `xs` (the mean of the middle two for an even count);
/// `None` for no samples or a sample that is not a finite number.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

impl Summary {
    pub fn of(xs: &[f64]) -> Option<Summary> {
        let median = median(xs)?;
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = if median != 0.0 {
            (max - min) / (2.0 * median.abs())
        } else {
            0.0
        };
        Some(Summary {
            n: xs.len(),
            median,
            min,
            max,
            spread,
        })
    }
}

/// `a[i] / b[i]` for every round that has both (a zero `b` is skipped).
pub fn paired_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter(|(_, &b)| b != 0.0)
        .map(|(&a, &b)| a / b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn summary_reports_range_and_relative_spread() {
        let s = Summary::of(&[90.0, 110.0, 100.0, 105.0, 95.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.median, 100.0);
        assert_eq!((s.min, s.max), (90.0, 110.0));
        assert!((s.spread - 0.10).abs() < 1e-12, "{}", s.spread);
        let one = Summary::of(&[4.0]).unwrap();
        assert_eq!(one.spread, 0.0);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn ratios_pair_rounds_and_skip_zero_denominators() {
        let r = paired_ratios(&[10.0, 20.0, 30.0], &[5.0, 0.0, 60.0]);
        assert_eq!(r, vec![2.0, 0.5]);
        assert!(paired_ratios(&[1.0, 2.0], &[1.0]).len() == 1);
    }
}
