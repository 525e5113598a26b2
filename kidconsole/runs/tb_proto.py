"""TensorBoard's ``Event`` record as a reader of scalars and text needs it, declared with protobuf's own
descriptors: the field numbers and types of TensorBoard's event.proto, summary.proto, tensor.proto and
tensor_shape.proto (what is not declared here, an image, a histogram, a graph, protobuf's parser skips), parsed
by protobuf's C implementation like any generated message.

Why not the generated messages tensorboardX ships: importing any module of tensorboardX runs its package's
``__init__``, which imports its writer, which imports torch wherever torch is installed (seconds, and torch in
the console's process, which the light/heavy split forbids).
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_DOUBLE, _FLOAT, _INT64, _INT32, _STRING, _MESSAGE, _BYTES = (
    _F.TYPE_DOUBLE, _F.TYPE_FLOAT, _F.TYPE_INT64, _F.TYPE_INT32, _F.TYPE_STRING, _F.TYPE_MESSAGE, _F.TYPE_BYTES)
PACKAGE = "kidconsole.tensorboard"


def _message(into, name: str, fields: list[tuple], oneofs: tuple[str, ...] = ()):
    """A message of ``(name, number, type, message type or None, repeated, oneof index or None)`` fields."""
    msg = into.add(name=name)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    for fname, number, ftype, type_name, repeated, oneof in fields:
        field = msg.field.add(name=fname, number=number, type=ftype,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if type_name:
            field.type_name = f".{PACKAGE}.{type_name}"
        if oneof is not None:
            field.oneof_index = oneof
    return msg


def _event_class():
    fd = descriptor_pb2.FileDescriptorProto(name="kidconsole/tensorboard_event.proto", package=PACKAGE,
                                            syntax="proto3")
    shape = _message(fd.message_type, "TensorShapeProto", [("dim", 2, _MESSAGE, "TensorShapeProto.Dim", True, None)])
    _message(shape.nested_type, "Dim", [("size", 1, _INT64, None, False, None)])
    _message(fd.message_type, "TensorProto", [
        ("dtype", 1, _INT32, None, False, None),  # DataType, an enum: the same varint on the wire
        ("tensor_shape", 2, _MESSAGE, "TensorShapeProto", False, None),
        ("tensor_content", 4, _BYTES, None, False, None),
        ("float_val", 5, _FLOAT, None, True, None),
        ("double_val", 6, _DOUBLE, None, True, None),
        ("string_val", 8, _BYTES, None, True, None)])
    meta = _message(fd.message_type, "SummaryMetadata", [
        ("plugin_data", 1, _MESSAGE, "SummaryMetadata.PluginData", False, None)])
    _message(meta.nested_type, "PluginData", [("plugin_name", 1, _STRING, None, False, None)])
    summary = _message(fd.message_type, "Summary", [("value", 1, _MESSAGE, "Summary.Value", True, None)])
    _message(summary.nested_type, "Value", [
        ("tag", 1, _STRING, None, False, None),
        ("simple_value", 2, _FLOAT, None, False, 0),
        ("tensor", 8, _MESSAGE, "TensorProto", False, 0),
        ("metadata", 9, _MESSAGE, "SummaryMetadata", False, None)], oneofs=("value",))
    _message(fd.message_type, "Event", [
        ("wall_time", 1, _DOUBLE, None, False, None),
        ("step", 2, _INT64, None, False, None),
        ("file_version", 3, _STRING, None, False, 0),
        ("summary", 5, _MESSAGE, "Summary", False, 0)], oneofs=("what",))
    pool = descriptor_pool.DescriptorPool()  # its own: nothing else's TensorBoard messages are touched
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Event"))


Event = _event_class()
