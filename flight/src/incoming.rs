//! Connections accepted from an already-bound listener, ready for a gRPC server.

use futures::{Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;

/// Every accepted connection with Nagle's algorithm off. tonic's `Server::tcp_nodelay` only
/// applies to listeners it binds itself; without this a small response waits for the client's
/// delayed ACK, about 40 ms per call.
pub fn nodelay_incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            let _ = stream.set_nodelay(true);
        })
    })
}
