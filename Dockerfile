# Shoal's image: the `shoal` binary on a base made on this machine (no registry is needed).
# Build it with `scripts/docker-build.sh`, which makes the base (`shoal-base:local`) from the
# shared libraries the binary links, prepares the context and tags the result `shoal:local`.
FROM shoal-base:local
COPY shoal /usr/local/bin/shoal
ENV SHOAL_LOG=info,openraft=warn
VOLUME /data
EXPOSE 50051 7000 50061
ENTRYPOINT ["/usr/local/bin/shoal"]
