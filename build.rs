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
    // The messages and the client are authbroker-client's (one definition,
    // with its redacting Debug); only the server is generated here.
    tonic_prost_build::configure()
        .extern_path(".authbroker.v1", "::authbroker_client::pb")
        .build_client(false)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
