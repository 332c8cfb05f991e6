"""What both drivers share that is not protocol: client construction, the TLS context, the raw parallel range
reader, file sinks, request/response header logging (``httplog``) and the translation of transport failures into
the SDK's errors."""
