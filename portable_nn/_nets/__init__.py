"""_nets"""
