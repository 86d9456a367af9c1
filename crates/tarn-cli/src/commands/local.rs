//! Offline commands on the local cache: stage, unstage, add, verify, clean, services, hash,
//! demo. (Placeholder: implemented in the core issue.)

use super::CmdResult;
use crate::context::GlobalArgs;

macro_rules! placeholder {
    ($($args:ident => $f:ident),* $(,)?) => {$(
        /// Arguments (placeholder).
        #[derive(clap::Args, Debug)]
        pub struct $args {}
        /// Not implemented yet.
        pub fn $f(_g: &GlobalArgs, _a: $args) -> CmdResult {
            anyhow::bail!(concat!(stringify!($f), " is not implemented yet"))
        }
    )*};
}
placeholder!(StageArgs => stage, UnstageArgs => unstage, AddArgs => add, VerifyArgs => verify,
    CleanArgs => clean, ServicesArgs => services, HashArgs => hash, DemoArgs => demo);
