"""Learning: the network, its one training path, rotation pretraining, inference, and the
learner the loop trains through (the head on frozen features, then fine-tuning)."""
