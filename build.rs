//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

use std::{env, error::Error, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let protos = ["proto/authbroker/v1/authbroker.proto"];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(protos, ["proto"])?;
    // compile_fds does not write the descriptor set; reflection needs it.
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("authbroker_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
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
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
