//! Generalised ridge regression with unpenalised columns, on sparse rows:
//! `min ‖y − X_u β − X_p γ‖² + Σ_j pen_j γ_j²`.
//!
//! Solved in the primal (`(XᵀX + diag pen) x = Xᵀy`) when there are fewer columns than
//! rows, and in the dual otherwise — with K = X_p diag(pen)⁻¹ X_pᵀ and M = (K + I)⁻¹,
//! β = (X_uᵀ M X_u)⁻¹ X_uᵀ M y and γ = diag(pen)⁻¹ X_pᵀ M (y − X_u β), the same minimiser —
//! so a table of thousands of layer keys fitted to a few hundred networks costs an n×n
//! solve, not a p×p one. Dense Cholesky: the systems are small and must be exact (the
//! HW-NAS-Bench tables are exactly additive, and a fit to them must reach round-off).

/// A sparse row: (column, value) pairs, columns distinct.
pub type Row = Vec<(usize, f64)>;

/// Cholesky factorisation of a dense symmetric positive-definite matrix (row-major, in
/// place, lower triangle); a tiny diagonal jitter keeps semi-definite systems solvable.
struct Cholesky {
    n: usize,
    l: Vec<f64>,
}

impl Cholesky {
    fn new(mut a: Vec<f64>, n: usize) -> Cholesky {
        let mean_diag = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>() / n.max(1) as f64;
        let jitter = 1e-12 * mean_diag.max(f64::MIN_POSITIVE);
        for i in 0..n {
            a[i * n + i] += jitter;
        }
        for j in 0..n {
            let d = (a[j * n + j] - (0..j).map(|k| a[j * n + k] * a[j * n + k]).sum::<f64>()).max(jitter).sqrt();
            a[j * n + j] = d;
            for i in j + 1..n {
                let s = a[i * n + j] - (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum::<f64>();
                a[i * n + j] = s / d;
            }
        }
        Cholesky { n, l: a }
    }

    fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x = b.to_vec();
        for i in 0..n {
            let s = x[i] - (0..i).map(|k| self.l[i * n + k] * x[k]).sum::<f64>();
            x[i] = s / self.l[i * n + i];
        }
        for i in (0..n).rev() {
            let s = x[i] - (i + 1..n).map(|k| self.l[k * n + i] * x[k]).sum::<f64>();
            x[i] = s / self.l[i * n + i];
        }
        x
    }
}

/// Fits the coefficients of `p` columns; `penalty[j] = 0` leaves column j unpenalised.
pub fn fit(rows: &[Row], y: &[f64], penalty: &[f64]) -> Vec<f64> {
    let p = penalty.len();
    let n = rows.len();
    assert_eq!(n, y.len());
    let free: Vec<usize> = (0..p).filter(|&j| penalty[j] == 0.0).collect();
    if p <= n || free.len() == p {
        primal(rows, y, penalty)
    } else {
        dual(rows, y, penalty, &free)
    }
}

fn primal(rows: &[Row], y: &[f64], penalty: &[f64]) -> Vec<f64> {
    let p = penalty.len();
    let mut a = vec![0.0; p * p];
    let mut b = vec![0.0; p];
    for (row, &yi) in rows.iter().zip(y) {
        for &(i, vi) in row {
            b[i] += vi * yi;
            for &(j, vj) in row {
                a[i * p + j] += vi * vj;
            }
        }
    }
    for j in 0..p {
        a[j * p + j] += penalty[j];
    }
    Cholesky::new(a, p).solve(&b)
}

fn dual(rows: &[Row], y: &[f64], penalty: &[f64], free: &[usize]) -> Vec<f64> {
    let n = rows.len();
    let p = penalty.len();
    // K + I, K_ab = Σ_j x_aj x_bj / pen_j over penalised j: via the transposed (column) lists.
    let mut cols: Vec<Vec<(usize, f64)>> = vec![Vec::new(); p];
    for (a, row) in rows.iter().enumerate() {
        for &(j, v) in row {
            cols[j].push((a, v));
        }
    }
    let mut k = vec![0.0; n * n];
    for (j, col) in cols.iter().enumerate() {
        if penalty[j] == 0.0 {
            continue;
        }
        let inv = 1.0 / penalty[j];
        for &(a, va) in col {
            for &(b, vb) in col {
                k[a * n + b] += va * vb * inv;
            }
        }
    }
    for a in 0..n {
        k[a * n + a] += 1.0;
    }
    let m = Cholesky::new(k, n);
    // β from the generalised least-squares normal equations X_uᵀ M X_u β = X_uᵀ M y.
    let q = free.len();
    let xu: Vec<Vec<f64>> = free
        .iter()
        .map(|&j| {
            let mut c = vec![0.0; n];
            for &(a, v) in &cols[j] {
                c[a] = v;
            }
            c
        })
        .collect();
    let m_xu: Vec<Vec<f64>> = xu.iter().map(|c| m.solve(c)).collect();
    let m_y = m.solve(y);
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    let mut g = vec![0.0; q * q];
    let mut h = vec![0.0; q];
    for r in 0..q {
        h[r] = dot(&xu[r], &m_y);
        for c in 0..q {
            g[r * q + c] = dot(&xu[r], &m_xu[c]);
        }
    }
    let beta = if q > 0 { Cholesky::new(g, q).solve(&h) } else { Vec::new() };
    // α = M (y − X_u β) = M y − Σ β_r M x_r;  γ_j = Σ_a x_aj α_a / pen_j.
    let mut alpha = m_y;
    for (r, mx) in m_xu.iter().enumerate() {
        for a in 0..n {
            alpha[a] -= beta[r] * mx[a];
        }
    }
    let mut x = vec![0.0; p];
    for (r, &j) in free.iter().enumerate() {
        x[j] = beta[r];
    }
    for (j, col) in cols.iter().enumerate() {
        if penalty[j] != 0.0 {
            x[j] = col.iter().map(|&(a, v)| v * alpha[a]).sum::<f64>() / penalty[j];
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(dense: &[Vec<f64>]) -> Vec<Row> {
        dense.iter().map(|r| r.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, &v)| (j, v)).collect()).collect()
    }

    #[test]
    fn primal_and_dual_agree() {
        // 6 rows, 9 columns (dual), column 0 unpenalised.
        let dense: Vec<Vec<f64>> =
            (0..6).map(|i| (0..9).map(|j| if j == 0 { 1.0 } else { ((i * 7 + j * 3) % 5) as f64 }).collect()).collect();
        let y: Vec<f64> = (0..6).map(|i| 2.0 + i as f64 * 0.7).collect();
        let pen: Vec<f64> = (0..9).map(|j| if j == 0 { 0.0 } else { 0.3 }).collect();
        let rows = rows_of(&dense);
        let d = dual(&rows, &y, &pen, &[0]);
        let p = primal(&rows, &y, &pen);
        for (a, b) in d.iter().zip(&p) {
            assert!((a - b).abs() < 1e-8, "dual {d:?} vs primal {p:?}");
        }
    }

    #[test]
    fn exact_data_are_recovered() {
        let dense: Vec<Vec<f64>> = (0..20).map(|i| vec![1.0, (i % 4) as f64, (i % 7) as f64]).collect();
        let y: Vec<f64> = dense.iter().map(|r| 0.5 + 2.0 * r[1] + 3.0 * r[2]).collect();
        let x = fit(&rows_of(&dense), &y, &[0.0, 1e-12, 1e-12]);
        assert!((x[0] - 0.5).abs() < 1e-6 && (x[1] - 2.0).abs() < 1e-6 && (x[2] - 3.0).abs() < 1e-6, "{x:?}");
    }
}
