//! The tools buildd puts between cargo and the compiler: the linker choice and its wrapper,
//! and sccache (detection, its server, its statistics, and sccache-dist's scheduler).
//!
//! Which tools a workspace uses is decided above, in `dispatch::tools`.

pub(crate) mod linker;
pub(crate) mod sccache;
pub(crate) mod sccache_dist;
