"""Where the brain finds the Docker engine's Unix socket (brain/images.py)."""

from __future__ import annotations

from lattice.docker_socket import DEFAULT_SOCKET, unix_socket


def test_the_socket_is_dockers_default_or_the_one_docker_host_names() -> None:
    assert unix_socket({}) == DEFAULT_SOCKET
    assert unix_socket({"DOCKER_HOST": ""}) == DEFAULT_SOCKET
    assert unix_socket({"DOCKER_HOST": "unix:///run/user/docker.sock"}) == (
        "/run/user/docker.sock")


def test_an_engine_reached_otherwise_has_no_socket() -> None:
    assert unix_socket({"DOCKER_HOST": "tcp://127.0.0.1:2375"}) is None
    assert unix_socket({"DOCKER_HOST": "ssh://box"}) is None
    assert unix_socket({"DOCKER_HOST": "unix://"}) is None
