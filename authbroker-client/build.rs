//! Compiles the service's proto with protox (pure Rust): messages and the
//! client only.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let protos = ["../proto/authbroker/v1/authbroker.proto"];
    println!("cargo:rerun-if-changed=../proto");
    let fds = protox::compile(protos, ["../proto"])?;
    tonic_prost_build::configure()
        // Messages carrying a state, code, password or token get a redacting
        // Debug written by hand (src/pb_debug.rs) instead of the derived one.
        .skip_debug([
            "authbroker.v1.BeginAuthResponse",
            "authbroker.v1.CompleteAuthRequest",
            "authbroker.v1.SignInWithPasswordRequest",
            "authbroker.v1.GetAccessTokenResponse",
        ])
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
