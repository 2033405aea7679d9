"""memvault for LlamaIndex.

* :class:`MemvaultMemory` -- a ``BaseMemory`` for ``FunctionAgent`` / ``AgentWorkflow``:
  LlamaIndex chat history plus memvault long-term memory, retrieved on every ``get`` and
  written on every ``put``.
* :class:`MemvaultMemoryBlock` -- a ``BaseMemoryBlock[str]`` for
  ``llama_index.core.memory.Memory.from_defaults(memory_blocks=[...])``.
* ``memvault.Memory`` itself is a drop-in ``client=`` for ``llama-index-memory-mem0``'s
  ``Mem0Memory`` (no code from this package needed).
"""

from memvault_llamaindex._convert import DEFAULT_INTRO, DEFAULT_OUTRO, MemvaultContext
from memvault_llamaindex.block import MemvaultMemoryBlock
from memvault_llamaindex.memory import MemvaultMemory

__version__ = "0.1.0"
__all__ = [
    "DEFAULT_INTRO",
    "DEFAULT_OUTRO",
    "MemvaultContext",
    "MemvaultMemory",
    "MemvaultMemoryBlock",
]
