import Lang
import Kernels
