//! The byte-forwarding floor for `bench/proxy.sh`: each client connection gets its own upstream
//! connection and bytes are copied both ways, with no HTTP parsing, routing or headers. No
//! HTTP proxy can do less work per request, so its rate is the ceiling any proxy can reach on the
//! machine and core layout the benchmark uses; the other targets are read against it.
//!
//! `forward_floor LISTEN UPSTREAM` — both `host:port`; serves until killed.

use tokio::net::{TcpListener, TcpStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let usage = "usage: forward_floor LISTEN UPSTREAM";
    let listen = arguments.next().ok_or(usage)?;
    let upstream = arguments.next().ok_or(usage)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (mut client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    })
}
