//! Medians and ranges of a set of samples.
//!
//! Rounds are few (five by default) and the machine is shared, so the harness reports the
//! median, which one slow round cannot move, with the minimum and maximum beside it, and
//! never a mean.

use serde::Serialize;

/// The median, minimum and maximum of some samples, in the samples' unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Summary {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) n: usize,
}

impl Summary {
    /// `None` for no samples.
    pub(crate) fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            n,
        })
    }
}

/// The summary of `value` over the rounds `keep` accepts (a round without the value is
/// left out).
pub(crate) fn over<R>(
    rounds: &[R],
    keep: impl Fn(&R) -> bool,
    value: impl Fn(&R) -> Option<f64>,
) -> Option<Summary> {
    let samples: Vec<f64> = rounds
        .iter()
        .filter(|r| keep(r))
        .filter_map(value)
        .collect();
    Summary::of(&samples)
}

/// `a / b` of two medians, when both exist and `b` is not zero.
pub(crate) fn ratio(a: Option<Summary>, b: Option<Summary>) -> Option<f64> {
    let (a, b) = (a?.median, b?.median);
    (b > 0.0).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max, odd.n), (2.0, 1.0, 3.0, 3));
        let even = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratios_need_both_sides() {
        let one = Summary::of(&[1.0]);
        let four = Summary::of(&[4.0]);
        assert_eq!(ratio(four, one), Some(4.0));
        assert_eq!(ratio(four, None), None);
        assert_eq!(ratio(four, Summary::of(&[0.0])), None);
    }
}
