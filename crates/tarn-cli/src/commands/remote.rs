//! Transfers: get, put, put-staged.
//! (Placeholder: implemented in the remote issue.)

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
placeholder!(GetArgs => get, PutArgs => put, PutStagedArgs => put_staged);
