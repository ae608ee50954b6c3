"""Start fer_node on a camera topic.

    ros2 launch fer_ros fer.launch.py camera:=/head_camera/image_raw
    ros2 launch fer_ros fer.launch.py camera:=/head_camera/image_raw compressed:=true backend:=tensorrt \
        model:=/opt/models/rmn_fer2013/model.yaml namespace:=perception
    ros2 launch fer_ros fer.launch.py hri_mode:=companion     # beside hri_face_detect: expressions for its faces
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    default_params = str(Path(get_package_share_directory("fer_ros")) / "config" / "fer.yaml")
    camera = LaunchConfiguration("camera")
    compressed = LaunchConfiguration("compressed")
    args = [
        DeclareLaunchArgument("camera", default_value="/camera/image_raw",
                              description="Image topic of the camera (for compressed input, the base topic: "
                                          "<camera>/compressed is subscribed)."),
        DeclareLaunchArgument("compressed", default_value="false", choices=["true", "false"],
                              description="Subscribe to <camera>/compressed (JPEG/PNG) instead of <camera>."),
        DeclareLaunchArgument("model", default_value="mini_xception_fer2013",
                              description="Model id (under share/fer_ros/models or $FER_ROS_MODEL_PATH), or a path to "
                                          "a model.yaml or to a model folder holding one."),
        DeclareLaunchArgument("backend", default_value="auto",
                              choices=["auto", "tensorrt", "onnxruntime", "torch"],
                              description="Inference backend (auto: TensorRT when an engine, tensorrt and a GPU "
                                          "are present, else ONNX Runtime)."),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML file with fer_node's parameters, keyed '/**/fer_node: "
                                          "ros__parameters:' (a bare 'fer_node:' is ignored under a namespace)."),
        DeclareLaunchArgument("hri_mode", default_value="pipeline", choices=["pipeline", "companion", "disabled"],
                              description="ROS4HRI role: pipeline (fer_node is the face detector: /humans/faces/...),"
                                          " companion (expressions for another REP-155 detector's faces; no camera)"
                                          ", disabled."),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace for the node and its relative topics (emotions, "
                                          "debug_image)."),
    ]
    overrides = {
        "compressed": ParameterValue(PythonExpression(["'", compressed, "' == 'true'"]), value_type=bool),
        "model": LaunchConfiguration("model"),
        "backend": LaunchConfiguration("backend"),
        "hri.mode": LaunchConfiguration("hri_mode"),
    }
    remappings = [("image", camera)]  # compressed:=true: the node subscribes to <camera>/compressed
    node = Node(package="fer_ros", executable="fer_node", name="fer_node", namespace=LaunchConfiguration("namespace"),
                parameters=[LaunchConfiguration("params_file"), overrides], remappings=remappings, output="screen",
                emulate_tty=True)
    return LaunchDescription(args + [node])
