//! Non-dominated sorting and crowding distance (Deb et al., "A Fast and Elitist
//! Multiobjective Genetic Algorithm: NSGA-II", 2002). All objectives are minimised.

/// Whether `a` Pareto-dominates `b`: no worse in every objective, better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        better |= x < y;
    }
    better
}

/// Fronts of indices 0..n, best first, under the relation `dom(a, b)` ("a dominates b").
/// Within a front, indices keep ascending order (deterministic).
pub fn non_dominated_sort(n: usize, dom: impl Fn(usize, usize) -> bool) -> Vec<Vec<usize>> {
    let mut dominated_by: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut count = vec![0usize; n];
    for (a, dominated) in dominated_by.iter_mut().enumerate() {
        for (b, c) in count.iter_mut().enumerate() {
            if a != b && dom(a, b) {
                dominated.push(b);
                *c += 1;
            }
        }
    }
    let mut fronts = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| count[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &a in &current {
            for &b in &dominated_by[a] {
                count[b] -= 1;
                if count[b] == 0 {
                    next.push(b);
                }
            }
        }
        next.sort_unstable();
        fronts.push(std::mem::replace(&mut current, next));
    }
    fronts
}

/// Crowding distance of each member of `front` (same order); boundary members get infinity.
// `k` indexes the objective inside each member's vector, not `objectives` itself.
#[allow(clippy::needless_range_loop)]
pub fn crowding_distance(front: &[usize], objectives: &[Vec<f64>]) -> Vec<f64> {
    let n = front.len();
    let mut dist = vec![0.0; n];
    if n == 0 {
        return dist;
    }
    let m = objectives[front[0]].len();
    for k in 0..m {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| objectives[front[a]][k].total_cmp(&objectives[front[b]][k]).then(a.cmp(&b)));
        let (lo, hi) = (objectives[front[order[0]]][k], objectives[front[order[n - 1]]][k]);
        dist[order[0]] = f64::INFINITY;
        dist[order[n - 1]] = f64::INFINITY;
        if hi > lo {
            for w in 1..n.saturating_sub(1) {
                let (prev, next) = (objectives[front[order[w - 1]]][k], objectives[front[order[w + 1]]][k]);
                dist[order[w]] += (next - prev) / (hi - lo);
            }
        }
    }
    dist
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_fronts_and_crowds() {
        // (latency, -accuracy): 0 and 1 trade off, 2 is dominated by 0, 3 by everything.
        let obj = vec![vec![1.0, -0.7], vec![2.0, -0.8], vec![1.5, -0.6], vec![3.0, -0.5]];
        let fronts = non_dominated_sort(4, |a, b| dominates(&obj[a], &obj[b]));
        assert_eq!(fronts, vec![vec![0, 1], vec![2], vec![3]]);
        let d = crowding_distance(&[0, 1, 2], &obj);
        assert!(d[0].is_infinite() && d[1].is_infinite());
        assert!(d[2].is_finite() || d[2].is_infinite());
        assert!(!dominates(&obj[0], &obj[0]));
    }
}
