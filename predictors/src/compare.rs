//! One Markdown table comparing predictor families on the same split.

use crate::metrics::Metrics;

/// `rows`: (predictor label, held-out metrics). Percentages are printed as %.
pub fn markdown_table(title: &str, rows: &[(String, Metrics)]) -> String {
    let mut s = format!(
        "{title}\n\n| predictor | n | RMSE ms | MAPE % | ±5 % | ±10 % | Kendall τ | Spearman ρ |\n|---|---|---|---|---|---|---|---|\n"
    );
    for (name, m) in rows {
        s += &format!(
            "| {name} | {} | {:.4} | {:.2} | {:.1} % | {:.1} % | {:.4} | {:.4} |\n",
            m.n,
            m.rmse_ms,
            100.0 * m.mape,
            100.0 * m.within_5pct,
            100.0 * m.within_10pct,
            m.kendall_tau,
            m.spearman
        );
    }
    s
}
