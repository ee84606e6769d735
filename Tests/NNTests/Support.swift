import Foundation
import XCTest
import NN
