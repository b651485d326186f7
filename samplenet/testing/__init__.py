"""Helpers shared by samplenet's tests."""
from samplenet.testing.contracts import assert_layer_contract, assert_model_round_trip

__all__ = ["assert_layer_contract", "assert_model_round_trip"]
