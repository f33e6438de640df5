//! What a training run trains: a fixed architecture or one of the supernets, built from a
//! serialisable [`NetSpec`] so a checkpoint can rebuild exactly the same variables.

use super::model::Model;
use super::supernet::{fbnet::FbNetSupernet, ofa::OfaSupernet, singlepath::SinglePathSupernet};
use super::NnError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spaces::{Arch, SpaceFamily};
use tch::nn::VarStore;
use tch::Tensor;

/// A network to train, as stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NetSpec {
    /// One architecture (`space` may be `blocks`), in the space's JSON encoding.
    Fixed { space: String, arch: Value },
    /// The weight-shared supernet of a space.
    Supernet { space: String },
}

impl NetSpec {
    pub fn space(&self) -> &str {
        match self {
            NetSpec::Fixed { space, .. } | NetSpec::Supernet { space } => space,
        }
    }
}

impl std::fmt::Display for NetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetSpec::Fixed { space, arch } => write!(f, "`{space}` network {arch}"),
            NetSpec::Supernet { space } => write!(f, "the `{space}` supernet"),
        }
    }
}

pub enum Net {
    Fixed(Model),
    Ofa(OfaSupernet),
    SinglePath(SinglePathSupernet),
    FbNet(FbNetSupernet),
}

impl Net {
    /// Creates the variables of `spec` in `vs`.
    pub fn build(vs: &VarStore, spec: &NetSpec) -> Result<Net, NnError> {
        let root = vs.root();
        Ok(match spec {
            NetSpec::Fixed { space, arch } => {
                let arch = Arch::parse(space, &arch.to_string())
                    .map_err(|source| NnError::CheckpointArch { space: space.clone(), source })?;
                Net::Fixed(Model::new(&root, &arch.network(None)))
            }
            NetSpec::Supernet { space: s } => match spaces::family_of(s) {
                Ok(SpaceFamily::Ofa(_)) => Net::Ofa(OfaSupernet::new(&root, s)?),
                Ok(SpaceFamily::SinglePath) => Net::SinglePath(SinglePathSupernet::new(&root)),
                Ok(SpaceFamily::FbNet) => Net::FbNet(FbNetSupernet::new(&root, s)?),
                _ => return Err(NnError::NoSupernet(s.clone())),
            },
        })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Net::Fixed(m) => tch::nn::ModuleT::forward_t(m, x, train),
            Net::Ofa(s) => s.forward_t(x, train),
            Net::SinglePath(s) => s.forward_t(x, train),
            Net::FbNet(s) => s.forward_t(x, train),
        }
    }

    /// Number of classes the network predicts.
    pub fn classes(&self) -> u32 {
        match self {
            Net::Fixed(m) => m.net.num_classes(),
            Net::Ofa(s) => s.full.num_classes(),
            Net::SinglePath(s) => s.full.num_classes(),
            Net::FbNet(s) => s.space.network(&s.derive()).num_classes(),
        }
    }

    /// Sets the BN momentum of every BN layer.
    pub fn set_bn_momentum(&mut self, m: f64) {
        match self {
            Net::Fixed(x) => x.bn_momentum = m,
            Net::Ofa(x) => x.bn_momentum = m,
            Net::SinglePath(x) => x.bn_momentum = m,
            Net::FbNet(x) => x.bn_momentum = m,
        }
    }
}
