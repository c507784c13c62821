"""End-to-end tests: authsvc with a real docker-registry, skopeo and podman."""
