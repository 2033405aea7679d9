"""memvault for CrewAI.

A storage backend for CrewAI's unified memory and memory tools for agents,
backed by memvault. (Placeholder: the package is filled in separately.)
"""
