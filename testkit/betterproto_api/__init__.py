"""Generated from protos/ by `make proto`: the driver's v1alpha1 API as betterproto classes, for tests only"""
