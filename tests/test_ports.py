"""The model server's port when another program holds it: strict when set, moved when default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_modelserve.backends.local_settings import DEFAULT_REST_PORT
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, crash_model_server, post_json, server_config
from .servers import PortHolder


def port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


class TestAnExplicitPort:
    @pytest.fixture
    def holder(self) -> Iterator[PortHolder]:
        holder = PortHolder()
        yield holder
        holder.release()

    @pytest.fixture
    def jp_server_config(self, holder: PortHolder) -> dict[str, Any]:
        return server_config(LocalBackend={"rest_api_port": holder.port})

    async def test_held_by_another_program_is_a_503_naming_the_port_and_the_setting(
        self, api: Api, simple_registered: dict[str, Any], holder: PortHolder
    ) -> None:
        # Given c.LocalBackend.rest_api_port set to a port another program listens on
        # When a serve is created
        code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)

        # Then it is a 503 that names the port and the setting to change, and leaves no serve
        assert code == 503 and envelope["status"] == "SERVICE_UNAVAILABLE", envelope
        assert envelope["message"] == (
            f"port {holder.port} on 127.0.0.1 is in use by another program, so the model "
            "server cannot start; set c.LocalBackend.rest_api_port to a free port "
            "(or 0 to pick one)"
        )
        _, listed = await api("GET", "/api/v1/serve")
        assert listed["result"] == []

        # When the other program lets the port go and the serve is created again
        holder.release()
        code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})

        # Then it serves on exactly the port that was set
        assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
        assert port_of(envelope["result"]["url"]) == holder.port
        status, _ = await post_json(envelope["result"]["url"], {"instances": [1.0]})
        assert status == 200


class TestTheDefaultPort:
    @pytest.fixture
    def holder(self) -> Iterator[PortHolder | None]:
        """Another program on the default port: this one, or one that already held it."""
        try:
            holder: PortHolder | None = PortHolder(DEFAULT_REST_PORT)
        except OSError:
            holder = None  # taken already (a user's own model server, say): just as good
        yield holder
        if holder is not None:
            holder.release()

    @pytest.fixture
    def jp_server_config(self, holder: PortHolder | None) -> dict[str, Any]:
        config = server_config()
        del config["LocalBackend"]  # rest_api_port left at its default, as users leave it
        return config

    async def test_held_by_another_program_gives_way_to_a_port_kept_across_restarts(
        self,
        api: Api,
        simple_registered: dict[str, Any],
        service: ServeService,
        holder: PortHolder | None,
    ) -> None:
        # Given the default port held by another program
        # When a serve is created with the port left at its default
        code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})

        # Then it serves, on a port of its own
        assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
        url = envelope["result"]["url"]
        port = port_of(url)
        assert port != DEFAULT_REST_PORT
        assert await post_json(url, {"instances": [1.0]}) == (200, {"predictions": [2.5]})

        # When the default port is free again, and the model server crashes
        if holder is not None:
            holder.release()
        serve = await crash_model_server(api, service)

        # Then it is started again on the port it had, so the url handed out stays valid
        assert serve["url"] == url
        assert await post_json(url, {"instances": [1.0]}) == (200, {"predictions": [2.5]})
