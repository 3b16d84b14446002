//! (2) Pure CPU decisions: which kernel, which tile, which grid. Unit-tested without a GPU.
pub mod arch;
pub mod backward;
pub mod knobs;
pub mod schedule;
pub mod split;
pub mod tiles;
pub mod variant;

pub use arch::Arch;
pub use backward::{backward_launches, BwdLaunches, BwdPath, Sm90BwdOverlap};
pub use schedule::{cluster_grid, forward_launch, rows_per_head, Launch};
pub use tiles::{sm90_pack, tile_config, TileConfig};
pub use variant::{FwdExt, KernelKind, Variant};
