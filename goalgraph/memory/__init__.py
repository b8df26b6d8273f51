"""Long-term memory: a temporal knowledge graph (embedded) or Zep, behind one protocol."""
