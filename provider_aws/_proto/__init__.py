"""Generated from protos/ by `make proto`: the driver's v1alpha1 service as betterproto classes, and its descriptor set"""
