//! hwnas search spaces and the architecture IR they all decode to.
//!
//! - [`ir`]: layers with shapes; MACs, params and lookup keys derive from it.
//! - [`SearchSpace`]: a product of categorical genes with JSON encoding, sampling,
//!   mutation, crossover and the distinct layer configurations it can contain.
//! - [`presets`]: the published networks (MobileNetV2, MnasNet-A1, …) in their spaces.

mod error;
pub mod genome;
pub mod ir;
mod json;
pub mod layout;
pub mod presets;
mod space;
pub mod spaces;
mod util;

pub use error::ArchError;
pub use genome::{Gene, Genome};
pub use layout::GeneLayout;
pub use space::{dedup_layers, GeneRole, OfaBase, SearchSpace, SpaceFamily};
pub use util::make_divisible;

use ir::Network;
use serde_json::Value;

/// Names of every search space, in the order `hwnas spaces` lists them.
pub const SPACE_NAMES: [&str; 7] =
    ["ofa-mbv3-w1.0", "ofa-mbv3-w1.2", "ofa-proxyless-w1.3", "singlepath", "mnasnet", "fbnet", "fbnet-cifar100"];

/// The pseudo-space of free-form block-string networks (not searchable).
pub const BLOCKS: &str = "blocks";

/// The search space called `name`.
pub fn space(name: &str) -> Result<Box<dyn SearchSpace>, ArchError> {
    use spaces::*;
    Ok(match name {
        "ofa-mbv3-w1.0" => Box::new(ofa::OfaSpace::mobilenet_v3(1.0)),
        "ofa-mbv3-w1.2" => Box::new(ofa::OfaSpace::mobilenet_v3(1.2)),
        "ofa-proxyless-w1.3" => Box::new(ofa::OfaSpace::proxyless(1.3)),
        "singlepath" => Box::<singlepath::SinglePath>::default(),
        "mnasnet" => Box::<mnasnet::MnasNet>::default(),
        "fbnet" => Box::new(fbnet::FbNet::new(fbnet::Macro::ImageNet)),
        "fbnet-cifar100" => Box::new(fbnet::FbNet::new(fbnet::Macro::Cifar100)),
        BLOCKS => {
            return Err(ArchError::Other(
                "`blocks` is a free-form notation for fixed networks, not a search space".into(),
            ))
        }
        _ => return Err(ArchError::UnknownSpace(name.into(), format!("{}, {BLOCKS}", SPACE_NAMES.join(", ")))),
    })
}

/// Every search space.
pub fn all_spaces() -> Vec<Box<dyn SearchSpace>> {
    SPACE_NAMES.iter().map(|n| space(n).expect("registered space")).collect()
}

/// The family of the space called `name` (an error names the known spaces).
pub fn family_of(name: &str) -> Result<SpaceFamily, ArchError> {
    Ok(space(name)?.family())
}

/// Whether `name` is a registered space of a family `wanted` accepts.
pub fn is_family(name: &str, wanted: impl Fn(SpaceFamily) -> bool) -> bool {
    family_of(name).is_ok_and(wanted)
}

/// The names of the registered spaces of a family `wanted` accepts, in registry order.
pub fn names_of(wanted: impl Fn(SpaceFamily) -> bool) -> impl Iterator<Item = &'static str> {
    SPACE_NAMES.into_iter().filter(move |n| is_family(n, &wanted))
}

/// Whether a family is once-for-all's (for [`is_family`] and [`names_of`]).
pub fn ofa(f: SpaceFamily) -> bool {
    matches!(f, SpaceFamily::Ofa(_))
}

/// An architecture read from JSON: a member of a search space, or a free-form network.
pub enum Arch {
    Member { space: Box<dyn SearchSpace>, genome: Genome },
    Free(spaces::blocks::BlockNet),
}

impl Arch {
    /// Parses `text` as an architecture of `space_name` (`blocks` for free-form networks).
    /// A `"space"` field in the JSON, if present, must agree.
    pub fn parse(space_name: &str, text: &str) -> Result<Arch, ArchError> {
        let v: Value = serde_json::from_str(text).map_err(|e| ArchError::Json(e.to_string()))?;
        if let Some(s) = v.get("space") {
            if s.as_str() != Some(space_name) {
                return Err(ArchError::field("space", format!("file says {s}, but the space is `{space_name}`")));
            }
        }
        if space_name == BLOCKS {
            return Ok(Arch::Free(spaces::blocks::BlockNet::from_json(&v)?));
        }
        let space = space(space_name)?;
        let genome = space.from_json(&v)?;
        Ok(Arch::Member { space, genome })
    }

    pub fn space_name(&self) -> &str {
        match self {
            Arch::Member { space, .. } => space.name(),
            Arch::Free(_) => BLOCKS,
        }
    }

    /// The architecture's own input resolution.
    pub fn resolution(&self) -> u32 {
        match self {
            Arch::Member { space, genome } => space.resolution(genome),
            Arch::Free(b) => b.resolution,
        }
    }

    /// The network at `resolution`, or at its own resolution.
    pub fn network(&self, resolution: Option<u32>) -> Network {
        let r = resolution.unwrap_or_else(|| self.resolution());
        match self {
            Arch::Member { space, genome } => space.network_at(genome, r),
            Arch::Free(b) => b.network_at(r),
        }
    }

    /// The canonical JSON encoding.
    pub fn to_json(&self) -> Value {
        match self {
            Arch::Member { space, genome } => space.to_json(genome),
            Arch::Free(b) => b.to_json(),
        }
    }
}
