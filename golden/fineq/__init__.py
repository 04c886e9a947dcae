"""FineQ: fine-grained mixed-precision 2.33-bit weight quantization (golden model).

The contract is ``shared/spec/fineq-format.md``; ``docs/format.md`` restates it
and records the points the project decided.
"""

from fineq.engine.config import EngineConfig
from fineq.engine.gemm import gemm, gemm_hw
from fineq.errors import FineQError, FormatError, QuantizationError, QuantizationWarning
from fineq.format.codec import decode_block, encode_block
from fineq.format.fileio import FORMAT_VERSION, load, save
from fineq.format.pack import unpack
from fineq.format.qmatrix import QuantizedMatrix, from_levels
from fineq.llm.modelfile import load_model, save_model
from fineq.llm.torch_utils import quantize_model
from fineq.quant.registry import quantize
from fineq.version import __version__

__all__ = [
    "__version__",
    "FORMAT_VERSION",
    "EngineConfig",
    "FineQError",
    "FormatError",
    "QuantizationError",
    "QuantizationWarning",
    "QuantizedMatrix",
    "decode_block",
    "encode_block",
    "from_levels",
    "gemm",
    "gemm_hw",
    "load",
    "load_model",
    "quantize",
    "quantize_model",
    "save",
    "save_model",
    "unpack",
]
