//! One role's latencies, computed once by the performance model and interpolated here: a forward pass
//! of prefill by (sequences, tokens each), a decode step by (batch, context length).

use crate::input::ModelInput;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyTable {
    /// The model input the table was computed for (the worker's scheduler reads its limits from here).
    pub input: ModelInput,
    /// Which engine computed it (`aiconfigurator-core 0.12.0`).
    pub engine: crate::input::EngineId,
    /// The backend version whose measurements were used.
    pub backend_version: Option<String>,
    /// Context lengths (tokens) of both tables' columns.
    pub ctx_grid: Vec<u32>,
    pub prefill_batch_grid: Vec<u32>,
    /// `prefill_ms[i][j]`: one prefill pass of `prefill_batch_grid[i]` sequences of `ctx_grid[j]` tokens.
    pub prefill_ms: Vec<Vec<f64>>,
    pub decode_batch_grid: Vec<u32>,
    /// `decode_ms[i][j]`: one decode step of `decode_batch_grid[i]` sequences at context `ctx_grid[j]`.
    pub decode_ms: Vec<Vec<f64>>,
    /// KV-cache tokens one attention-DP rank holds, when the model could size it.
    pub kv_capacity_tokens: Option<u64>,
    /// KV bytes per token per GPU (sizes the disaggregated transfer).
    pub kv_bytes_per_token: Option<u64>,
    /// Why the KV capacity is unknown, if it is.
    pub kv_note: Option<String>,
}

impl LatencyTable {
    /// A prefill pass of `seqs` sequences of `tokens` tokens each, in ms.
    pub fn prefill_ms(&self, seqs: f64, tokens: f64) -> f64 {
        interp2(
            &self.prefill_batch_grid,
            &self.ctx_grid,
            &self.prefill_ms,
            seqs,
            tokens,
        )
    }

    /// A decode step of `batch` sequences whose mean context is `ctx` tokens, in ms.
    pub fn decode_ms(&self, batch: f64, ctx: f64) -> f64 {
        interp2(
            &self.decode_batch_grid,
            &self.ctx_grid,
            &self.decode_ms,
            batch,
            ctx,
        )
    }

    /// Checks what a table read from a file must hold before a scheduler relies on it.
    pub fn validate(&self) -> Result<(), String> {
        let rows_ok = |grid: &[u32], rows: &[Vec<f64>]| {
            !grid.is_empty()
                && grid.windows(2).all(|w| w[0] < w[1])
                && rows.len() == grid.len()
                && rows.iter().all(|r| {
                    r.len() == self.ctx_grid.len() && r.iter().all(|v| v.is_finite() && *v >= 0.0)
                })
        };
        if self.ctx_grid.is_empty() || !self.ctx_grid.windows(2).all(|w| w[0] < w[1]) {
            return Err("ctx_grid must be non-empty and increasing".into());
        }
        if !rows_ok(&self.prefill_batch_grid, &self.prefill_ms) {
            return Err(
                "prefill_ms does not match its grids (or holds a negative or non-finite value)"
                    .into(),
            );
        }
        if !rows_ok(&self.decode_batch_grid, &self.decode_ms) {
            return Err(
                "decode_ms does not match its grids (or holds a negative or non-finite value)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Piecewise-linear interpolation on a grid; beyond its ends, the last segment's slope goes on (never
/// below zero), so that a batch past the table's last row costs more, not the same.
fn interp1(grid: &[u32], values: &[f64], x: f64) -> f64 {
    match grid.len() {
        0 => 0.0,
        1 => values[0],
        n => {
            let i = grid.partition_point(|g| f64::from(*g) <= x).clamp(1, n - 1);
            let (x0, x1) = (f64::from(grid[i - 1]), f64::from(grid[i]));
            let (y0, y1) = (values[i - 1], values[i]);
            let t = if x < x0 && i == 1 {
                // Below the first point: hold (a step never costs less than its smallest measured shape).
                0.0
            } else {
                (x - x0) / (x1 - x0)
            };
            (y0 + t * (y1 - y0)).max(0.0)
        }
    }
}

fn interp2(rows: &[u32], cols: &[u32], values: &[Vec<f64>], r: f64, c: f64) -> f64 {
    let along_cols: Vec<f64> = values.iter().map(|row| interp1(cols, row, c)).collect();
    interp1(rows, &along_cols, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_and_extends_beyond_the_grid() {
        let g = [1, 2, 4];
        let v = [10.0, 12.0, 16.0];
        assert_eq!(interp1(&g, &v, 1.0), 10.0);
        assert_eq!(interp1(&g, &v, 3.0), 14.0);
        assert_eq!(interp1(&g, &v, 8.0), 24.0);
        assert_eq!(interp1(&g, &v, 0.5), 10.0);
        let rows = vec![vec![1.0, 2.0], vec![3.0, 4.0]];
        assert_eq!(interp2(&[1, 3], &[10, 20], &rows, 2.0, 15.0), 2.5);
    }
}
