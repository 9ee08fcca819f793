"""Each operation type's params model: validated when an operation is created, and by the
worker that runs it. ``ktrdr.domain.operation_params`` maps the types to them."""
