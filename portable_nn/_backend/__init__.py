"""_backend"""
