"""Meta-learning pieces shared by the domain-generalization trainers (MetaBIN, M3L)."""
