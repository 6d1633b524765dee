"""Whether torch.compile (inductor) can build CPU kernels here: it needs a C++ compiler."""


def cpu_compiler_problem():
    """None when inductor finds a C++ compiler, else the first line of its complaint."""
    from torch._inductor import cpp_builder
    try:
        cpp_builder.get_cpp_compiler()
    except Exception as error:  # noqa: BLE001  (inductor raises its own InvalidCxxCompiler)
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None
