"""memvault for LlamaIndex.

Memory blocks and a mem0-compatible memory class for ``llama_index.core.memory``
backed by memvault. (Placeholder: the package is filled in separately.)
"""
