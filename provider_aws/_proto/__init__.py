"""Generated from protos/ by `make proto`: the descriptor set of the driver's v1alpha1 API"""
