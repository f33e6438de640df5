//! Weight-shared supernets: a sub-network is selected at run time and computed from views
//! of one set of weights (no copies).
//!
//! - [`ofa`]: once-for-all elastic kernel/depth/expansion/resolution with progressive shrinking;
//!   [`ofa_checkpoint`] loads OFA's own released supernet checkpoints into it;
//! - [`singlepath`]: Single-Path NAS superkernels with trainable thresholds;
//! - [`fbnet`]: FBNet's Gumbel-softmax mixture of candidate ops.

pub mod fbnet;
pub mod ofa;
pub mod ofa_checkpoint;
pub mod singlepath;
