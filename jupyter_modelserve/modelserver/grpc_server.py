"""TF Serving's gRPC API (`--port`): PredictionService and ModelService.GetModelStatus.

The services are those of `tensorflow-serving-api`, so a client written for TF Serving works
unchanged. They run on the same asyncio loop as the REST server: status and metadata answer on
the loop, predictions run on the REST server's executor (TensorFlow releases the GIL). Errors
carry TF Serving's status codes (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION...), and every
call is counted in the same metrics as REST, under the same API names.

The generated modules import TensorFlow, so this module is imported only once it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from . import grpc_convert as convert
from .errors import ServingError
from .logs import log
from .manager import ModelManager
from .metrics import Metrics

T = TypeVar("T")


class _Calls:
    """What both services share: the manager, the executor, metrics and error answers."""

    def __init__(
        self, manager: ModelManager, executor: Executor, metrics: Metrics, max_bytes: int
    ) -> None:
        self.manager = manager
        self.executor = executor
        self.metrics = metrics
        self.max_bytes = max_bytes

    async def answer(
        self,
        context: grpc.aio.ServicerContext,
        api: str,
        spec: Any,
        work: Callable[[list[int]], T],
        blocking: bool,
    ) -> T:
        """Run `work` (on the executor when `blocking`), count it, and turn a ServingError into
        the gRPC status TF Serving gives. `work` appends the version that answered."""
        started = time.perf_counter()
        served: list[int] = []
        code, message = "OK", ""
        try:
            if blocking:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self.executor, work, served)
            return work(served)
        except ServingError as error:
            code, message = error.code, error.message
        except Exception as error:  # a bug here must still answer with a status, not hang up
            log.exception("Internal error answering gRPC %s", api)
            code, message = "INTERNAL", f"Internal error: {type(error).__name__}: {error}"
        finally:
            if spec.name:  # as REST: a request naming no model is not counted
                version = str(served[0]) if served else _requested_version(spec)
                micros = (time.perf_counter() - started) * 1e6
                self.metrics.record(spec.name, version, api, code, micros, entrypoint="GRPC")
        status = getattr(grpc.StatusCode, code, grpc.StatusCode.UNKNOWN)
        await context.abort(status, message)
        raise AssertionError("context.abort returns only by raising")  # for the type checker

    def servable(self, spec: Any, served: list[int]) -> Any:
        name, version, label = convert.model_key(spec)
        servable = self.manager.servable(name, version, label)
        served.append(servable.version)
        return servable


def _requested_version(spec: Any) -> str:
    return str(spec.version.value) if spec.WhichOneof("version_choice") == "version" else ""


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, calls: _Calls) -> None:
        self.calls = calls

    async def Predict(self, request: Any, context: Any) -> Any:
        return await self.calls.answer(
            context, "predict", request.model_spec, lambda s: self._predict(request, s), True
        )

    def _predict(self, request: Any, served: list[int]) -> Any:
        from .tensors import check_input_names

        servable = self.calls.servable(request.model_spec, served)
        info, function = servable.signature(request.model_spec.signature_name or None)
        specs = servable.input_specs(function)
        check_input_names(request.inputs, specs, info.name)
        limit = self.calls.max_bytes
        arrays = {
            k: convert.to_array(k, proto, specs[k], limit) for k, proto in request.inputs.items()
        }
        names = convert.output_names(info.outputs, request.output_filter, info.name)
        outputs = servable.run(function, arrays)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(convert.answered_spec(servable.name, servable.version))
        response.model_spec.signature_name = info.name
        for name in names:
            response.outputs[name].CopyFrom(convert.to_proto(outputs[name]))
        return response

    async def Classify(self, request: Any, context: Any) -> Any:
        return await self.calls.answer(
            context, "classify", request.model_spec, lambda s: self._classify(request, s), True
        )

    def _classify(self, request: Any, served: list[int]) -> Any:
        from . import examples
        from .signatures import CLASSIFY

        def fill(response: Any, outputs: Any, count: int) -> None:
            rows = examples.classify_results(outputs, count)
            response.result.CopyFrom(convert.classification_result(rows))

        return self._on_examples(
            request, served, CLASSIFY, classification_pb2.ClassificationResponse, fill
        )

    async def Regress(self, request: Any, context: Any) -> Any:
        return await self.calls.answer(
            context, "regress", request.model_spec, lambda s: self._regress(request, s), True
        )

    def _regress(self, request: Any, served: list[int]) -> Any:
        from . import examples
        from .signatures import REGRESS

        def fill(response: Any, outputs: Any, count: int) -> None:
            values = examples.regress_results(outputs, count)
            response.result.CopyFrom(convert.regression_result(values))

        return self._on_examples(request, served, REGRESS, regression_pb2.RegressionResponse, fill)

    def _on_examples(
        self,
        request: Any,
        served: list[int],
        method: str,
        response_type: Callable[[], Any],
        fill: Callable[[Any, Any, int], None],
    ) -> Any:
        """Classify or Regress: the serialized examples through the method's signature, the
        answer a `response_type` message whose result `fill` writes."""
        servable, function, input_key, info = self._examples_signature(request, served, method)
        serialized = convert.serialized_examples(request.input)
        outputs = servable.run(function, {input_key: serialized})
        response = response_type()
        response.model_spec.CopyFrom(convert.answered_spec(servable.name, servable.version))
        response.model_spec.signature_name = info.name
        fill(response, outputs, len(serialized))
        return response

    def _examples_signature(
        self, request: Any, served: list[int], method: str
    ) -> tuple[Any, Any, str, Any]:
        from . import examples

        servable = self.calls.servable(request.model_spec, served)
        info, function = servable.signature(request.model_spec.signature_name or None)
        return servable, function, examples.check_signature(info, method), info

    async def GetModelMetadata(self, request: Any, context: Any) -> Any:
        return await self.calls.answer(
            context, "metadata", request.model_spec, lambda s: self._metadata(request, s), True
        )

    def _metadata(self, request: Any, served: list[int]) -> Any:
        convert.check_metadata_fields(request.metadata_field)
        servable = self.calls.servable(request.model_spec, served)
        return convert.metadata_response(servable.name, servable.version, servable.path)

    async def MultiInference(self, request: Any, context: Any) -> Any:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "MultiInference is not served by the built-in model server; call Classify or Regress",
        )


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, calls: _Calls) -> None:
        self.calls = calls

    async def GetModelStatus(self, request: Any, context: Any) -> Any:
        def status(served: list[int]) -> Any:
            name, version, label = convert.model_key(request.model_spec)
            return convert.status_response(self.calls.manager.status(name, version, label))

        return await self.calls.answer(context, "status", request.model_spec, status, False)

    async def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "HandleReloadConfigRequest is not served by the built-in model server: change the "
            "--model_config_file instead (it is re-read on SIGHUP and every "
            "--model_config_file_poll_wait_seconds)",
        )


async def serve(
    server: grpc.aio.Server,
    manager: ModelManager,
    executor: Executor,
    metrics: Metrics,
    max_bytes: int,
) -> None:
    """Add TF Serving's services to `server` (bound by `grpc_listen.listen`) and start it.

    `max_bytes` also bounds the tensors a request may ask to build (see `grpc_convert`)."""
    calls = _Calls(manager, executor, metrics, max_bytes)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(calls), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(calls), server)
    await server.start()
