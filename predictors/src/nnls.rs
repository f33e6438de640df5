//! Non-negative least squares by Lawson–Hanson's active-set method on the normal
//! equations, with some variables left free (an intercept). Small dense problems
//! (one unknown per lookup-table key: ~100–1,000) where an exact active-set solve
//! is both affordable and needed: the HW-NAS-Bench tables are exactly additive, so
//! the fit must reach round-off residuals, which first-order methods approach slowly.
//! Hand-written because no maintained Rust crate offers NNLS with free variables
//! without pulling in a linear-algebra stack.

/// A dense symmetric matrix in row-major order.
#[derive(Clone, Debug)]
pub struct Gram {
    pub n: usize,
    pub a: Vec<f64>,
}

impl Gram {
    pub fn zeros(n: usize) -> Self {
        Gram { n, a: vec![0.0; n * n] }
    }
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }
    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        self.a[i * self.n + j] += v;
    }
}

/// Solves `min ½ xᵀGx − cᵀx` subject to `x_i ≥ 0` where `!free[i]`. `g` must be
/// positive definite on every subset the method visits (add a ridge to make sure).
pub fn nnls_normal(g: &Gram, c: &[f64], free: &[bool]) -> Vec<f64> {
    let n = g.n;
    assert_eq!(c.len(), n);
    assert_eq!(free.len(), n);
    let scale = c.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
    let tol = 1e-13 * scale * n as f64;
    let mut passive: Vec<bool> = free.to_vec();
    let mut x = vec![0.0; n];
    if passive.iter().any(|&p| p) {
        x = solve_passive(g, c, &passive);
    }
    // Each outer step adds one variable; inner steps only remove; the cap guards
    // against cycling on degenerate ties.
    for _ in 0..(3 * n + 10) {
        let w = gradient(g, c, &x);
        let enter = (0..n).filter(|&j| !passive[j]).max_by(|&a, &b| w[a].total_cmp(&w[b]));
        let Some(j) = enter.filter(|&j| w[j] > tol) else { break };
        passive[j] = true;
        loop {
            let s = solve_passive(g, c, &passive);
            let blocking: Vec<usize> = (0..n).filter(|&i| passive[i] && !free[i] && s[i] <= 0.0).collect();
            if blocking.is_empty() {
                x = s;
                break;
            }
            let alpha = blocking.iter().map(|&i| x[i] / (x[i] - s[i])).fold(f64::INFINITY, f64::min);
            for i in 0..n {
                if passive[i] {
                    x[i] += alpha * (s[i] - x[i]);
                }
            }
            for i in 0..n {
                if passive[i] && !free[i] && x[i] <= 1e-15 * scale.max(1.0) {
                    passive[i] = false;
                    x[i] = 0.0;
                }
            }
        }
    }
    x
}

/// c − Gx: the negative gradient, positive where increasing a variable helps.
fn gradient(g: &Gram, c: &[f64], x: &[f64]) -> Vec<f64> {
    (0..g.n).map(|i| c[i] - (0..g.n).map(|j| g.at(i, j) * x[j]).sum::<f64>()).collect()
}

/// Unconstrained solution on the passive set, zero elsewhere.
fn solve_passive(g: &Gram, c: &[f64], passive: &[bool]) -> Vec<f64> {
    let idx: Vec<usize> = (0..g.n).filter(|&i| passive[i]).collect();
    let m = idx.len();
    let mut sub = vec![0.0; m * m];
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx.iter().enumerate() {
            sub[a * m + b] = g.at(i, j);
        }
    }
    let rhs: Vec<f64> = idx.iter().map(|&i| c[i]).collect();
    let sol = cholesky_solve(&mut sub, m, rhs);
    let mut x = vec![0.0; g.n];
    for (a, &i) in idx.iter().enumerate() {
        x[i] = sol[a];
    }
    x
}

/// Solves A y = b for symmetric positive (semi)definite A in place (LDLᵀ-free
/// Cholesky; a non-positive pivot is clamped so a singular direction gets 0).
pub fn cholesky_solve(a: &mut [f64], m: usize, mut b: Vec<f64>) -> Vec<f64> {
    for j in 0..m {
        let mut d = a[j * m + j];
        for k in 0..j {
            d -= a[j * m + k] * a[j * m + k];
        }
        let pivot_ok = d > 1e-300;
        let l = if pivot_ok { d.sqrt() } else { f64::INFINITY };
        a[j * m + j] = l;
        for i in j + 1..m {
            let mut s = a[i * m + j];
            for k in 0..j {
                s -= a[i * m + k] * a[j * m + k];
            }
            a[i * m + j] = if pivot_ok { s / l } else { 0.0 };
        }
    }
    for i in 0..m {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * m + k] * b[k];
        }
        b[i] = s / a[i * m + i];
    }
    for i in (0..m).rev() {
        let mut s = b[i];
        for k in i + 1..m {
            s -= a[k * m + i] * b[k];
        }
        b[i] = s / a[i * m + i];
    }
    b
}

/// Non-negative (ridge-regularised) least squares on a design matrix given row by row:
/// `min ‖Ax − y‖² + ridge·mean(diag AᵀA)·Σ_{regularised i} x_i²`, `x_i ≥ 0` unless free.
pub fn nnls_rows(rows: &[Vec<(usize, f64)>], y: &[f64], n: usize, free: &[bool], ridge: f64) -> Vec<f64> {
    let mut g = Gram::zeros(n);
    let mut c = vec![0.0; n];
    for (row, &yi) in rows.iter().zip(y) {
        for &(i, vi) in row {
            c[i] += vi * yi;
            for &(j, vj) in row {
                g.add(i, j, vi * vj);
            }
        }
    }
    let mean_diag = (0..n).map(|i| g.at(i, i)).sum::<f64>() / n.max(1) as f64;
    for (i, &is_free) in free.iter().enumerate() {
        // The free intercept is not shrunk: it carries whatever all networks share.
        if !is_free {
            g.add(i, i, ridge * mean_diag);
        }
    }
    nnls_normal(&g, &c, free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_solved_problem() {
        // min (x0 - 1)² + (x1 + 2)²  s.t. x ≥ 0  ->  x = (1, 0).
        let mut g = Gram::zeros(2);
        g.add(0, 0, 1.0);
        g.add(1, 1, 1.0);
        let x = nnls_normal(&g, &[1.0, -2.0], &[false, false]);
        assert!((x[0] - 1.0).abs() < 1e-12 && x[1] == 0.0, "{x:?}");
        // The same with x1 free reaches the unconstrained optimum.
        let x = nnls_normal(&g, &[1.0, -2.0], &[false, true]);
        assert!((x[1] + 2.0).abs() < 1e-12, "{x:?}");
    }

    #[test]
    fn recovers_exact_additive_model() {
        // y = 2·a + 3·b + 0·c with every row a count vector.
        let rows: Vec<Vec<(usize, f64)>> =
            vec![vec![(0, 1.0), (1, 1.0)], vec![(0, 2.0)], vec![(1, 1.0), (2, 1.0)], vec![(2, 3.0), (0, 1.0)]];
        let y = [5.0, 4.0, 3.0, 2.0];
        let x = nnls_rows(&rows, &y, 3, &[false; 3], 0.0);
        for (got, want) in x.iter().zip([2.0, 3.0, 0.0]) {
            assert!((got - want).abs() < 1e-9, "{x:?}");
        }
    }

    #[test]
    fn active_constraint_is_binding() {
        // Unconstrained LS would want x1 < 0 (y decreases when b is present).
        let rows: Vec<Vec<(usize, f64)>> = vec![vec![(0, 1.0)], vec![(0, 1.0), (1, 1.0)], vec![(0, 2.0), (1, 1.0)]];
        let y = [2.0, 1.0, 3.0];
        let x = nnls_rows(&rows, &y, 2, &[false; 2], 0.0);
        assert_eq!(x[1], 0.0);
        // With b pinned at 0 the optimum of a is Σ a_i y_i / Σ a_i² = (2 + 1 + 6) / 6.
        assert!((x[0] - 1.5).abs() < 1e-12, "{x:?}");
    }
}
