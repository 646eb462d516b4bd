"""What a notebook hands `Serve.predict`, as the TF Serving predict body it means.

numpy arrays, lists, dicts of named inputs and pandas DataFrames or Series all arrive here. pandas
is never imported: a DataFrame is recognised by what it has (`columns`, `to_numpy`), so a kernel
without pandas pays nothing.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput
from .schemas import SignatureView, TensorSpecView


def predict_body(data: Any, signature: SignatureView | None) -> dict[str, Any]:
    """TF Serving's predict body for `data`.

    A DataFrame whose signature has several inputs sends each column to the input of its name
    (TF Serving's columnar `inputs`); with one input, its rows are the instances.
    """
    if is_dataframe(data):
        return _dataframe_body(data, signature)
    return {"instances": jsonable(data)}


def jsonable(value: Any) -> Any:
    """`value` with numpy arrays, numpy scalars and pandas objects turned into JSON types."""
    if is_dataframe(value):
        return jsonable(value.to_numpy())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars, pandas Series, anything shaped like them
        return tolist()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    return value


def _dataframe_body(frame: Any, signature: SignatureView | None) -> dict[str, Any]:
    inputs = signature.inputs if signature is not None else []
    if len(inputs) <= 1:
        rows = frame.to_numpy()
        one_value_each = inputs and inputs[0].shape is not None and len(inputs[0].shape) == 1
        if one_value_each and rows.ndim == 2 and rows.shape[1] == 1:
            # A 1-D input (shape [batch]) takes one value per row, not a row of one.
            return {"instances": jsonable(rows[:, 0])}
        return {"instances": jsonable(rows)}
    columns = [str(column) for column in frame.columns]
    wanted = [spec.name for spec in inputs]
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise InvalidInput(
            f"the DataFrame has no column for input(s) {', '.join(map(repr, missing))}; the "
            f"signature '{signature.name if signature else ''}' takes "
            f"{', '.join(map(repr, wanted))} (its columns: {', '.join(map(repr, columns))})"
        )
    return {"inputs": {spec.name: _column(frame[spec.name], spec) for spec in inputs}}


def _column(series: Any, spec: TensorSpecView) -> list[Any]:
    values: list[Any] = jsonable(series)
    # A Keras input of shape (1,) is [batch, 1]: one scalar per row becomes a row of one.
    if spec.shape is not None and len(spec.shape) == 2 and spec.shape[1] == 1:
        return [value if isinstance(value, list) else [value] for value in values]
    return values


def is_dataframe(value: Any) -> bool:
    return hasattr(value, "columns") and callable(getattr(value, "to_numpy", None))
