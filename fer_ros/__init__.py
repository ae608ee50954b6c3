"""fer_ros: facial expression recognition for human-robot interaction.

The perception core (``fer_ros.pipeline`` and what it uses) imports no ROS module; ``fer_ros.ros`` holds the node.
"""
import pkgutil

# The generated message module fer_ros.msg lives in the colcon install tree, next to an installed copy of this
# package. When running from the source tree, extend the package path so both halves are found.
__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = "0.1.0"
