"""_math"""
